require ["reject", "ereject"];
if header :contains "subject" "viagra" { discard; stop; }
if size :over 20M { reject "Message trop volumineux."; }
if header :is "x-bad" "1" { ereject "Refusé"; }
