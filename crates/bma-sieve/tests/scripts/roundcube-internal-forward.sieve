require ["copy","fileinto"];
# rule:[Vers le PO]
if anyof (header :contains "subject" "inscription", address :domain :is "from" "enseignement.be")
{
	redirect :copy "po000321@adm.cfwb.be";
}
# rule:[Archives]
if size :over 5M
{
	fileinto "INBOX.Gros messages";
}
