require ["variables", "fileinto", "copy"];
if header :matches "X-Forward-To" "*" {
  set "target" "${1}";
}
redirect :copy "${target}";
if envelope :matches "to" "*+*@*" {
  fileinto "INBOX.${2}";
}
set "x" "${unknown}";
redirect "${x}@gmail.com";
