require "vacation";
vacation :days 14 :subject "Congés" text:
Bonjour,

..signé
.
;
