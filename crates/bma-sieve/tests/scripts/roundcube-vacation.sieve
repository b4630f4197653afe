require ["vacation"];
# rule:[Absence été]
if true
{
	vacation :days 7 :addresses ["ec012345@adm.cfwb.be","direction@ecole-exemple.be"] :subject "Absence" :from "ec012345@adm.cfwb.be" "Bonjour,\r\nL'école est fermée jusqu'au 16 août.\r\nLa direction";
}
