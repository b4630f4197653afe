require ["include"];
include :personal "roundcube";
include :global :optional "spam-global";
include "vacances";
return;
