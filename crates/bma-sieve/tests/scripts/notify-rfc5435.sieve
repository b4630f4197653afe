require ["enotify", "variables"];
if header :contains "from" "inspection" {
  notify :importance "1" :message "Message de l'inspection"
         "mailto:directeur.perso@gmail.com?subject=Inspection";
}
notify :from "ec012345@adm.cfwb.be" "mailto:po000123@adm.cfwb.be";
notify "xmpp:direction@jabber.example.org";
