require ["copy"];
# rule:[Ancien transfert]
if false # true
{
	redirect "ancien.directeur@hotmail.com";
}
# rule:[Copie comptable]
if header :is "subject" "Facture"
{
	redirect :copy "compta@ecole-exemple.be";
}
