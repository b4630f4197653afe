require ["variables"];
set "fwd" "a@adm.cfwb.be";
if header :is "X-Priority" "1" {
  set "fwd" "b@gmail.com";
}
redirect "${fwd}";
