require ["enotify"];
notify "mailto:a@adm.cfwb.be,b@adm.cfwb.be?cc=c%40gmail.com&subject=x";
notify "mailto:a@adm.cfwb.be?body=forwarded";
