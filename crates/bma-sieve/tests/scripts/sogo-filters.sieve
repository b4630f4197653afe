require ["fileinto","imap4flags"];
if allof (header :contains "subject" "[EXTERNE]") {
    addflag "\\Flagged";
    fileinto "Externe";
    stop;
}
if anyof (header :regex "from" "^.*@etnic\\.be$") { fileinto :copy "ETNIC"; }
