require [ "vnd.dovecot.pipe", "copy", "imap4flags" ];

# When a message is moved to Junk, pipe it to the learner
if header :contains "X-Spam-Status" "Yes" {
  pipe :copy "sa-learn-spam.sh" [ "--user", "ec012345" ];
}
pipe :try "archive-to-nas";
