require ["vacation","envelope"];
vacation :days 7 :addresses ["po000123@adm.cfwb.be"] :subject "Absent du bureau" text:
Bonjour,

Je suis absent jusqu'au 2 septembre.
..Ceci commence par un point.
.
;
redirect "po000123.backup@gmail.com";
keep;
