require ["copy"];
# rule:[Transfert vers Gmail]
if true
{
	redirect :copy "secretariat.ecole.saint-joseph@gmail.com";
}
