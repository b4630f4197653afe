require ["vnd.dovecot.execute", "variables"];
execute :pipe :output "summary" "summarise-message";
if string :is "${summary}" "urgent" {
  execute "send-sms" ["+3224133090"];
}
