require ["fileinto", "copy"];
if address :domain :is "from" "adm.cfwb.be" {
    if header :contains "subject" "urgent" {
        if size :under 100K {
            redirect :copy "gsm-direction@proximus.be";
        } else {
            fileinto "Urgent";
        }
    } elsif header :contains "subject" "info" {
        redirect :copy "ec012346@adm.cfwb.be";
    }
}
