require ["notify"];
if size :over 1K {
  notify :method "mailto" :options ["alerte@yahoo.fr", "po000123@adm.cfwb.be"] :low :message "Nouveau message";
}
notify :method "mailto" :options "ec012345@adm.cfwb.be";
