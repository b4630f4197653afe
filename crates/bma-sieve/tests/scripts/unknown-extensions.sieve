require ["vnd.dovecot.report", "foreverypart", "mime", "editheader"];
addheader "X-Migrated" "yes";
foreverypart {
  if header :mime :param "filename" :contains "Content-Disposition" ".exe" {
    redirect "quarantine@virus-lab.example";
    break;
  }
}
report "abuse" "spam" "abuse@example.net";
