# Generated: Do not edit
require ["fileinto", "copy", "body"];

/* Mails de la FWB
 * vers un dossier à part */
if address :domain :is ["from", "sender"] "cfwb.be"
{
  fileinto "FWB";
}
elsif body :text :contains "désinscription"
{
  discard;
}
else
{
  redirect :copy "tri@ecole-exemple.be";
}
