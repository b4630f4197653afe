require ["variables", "copy"];
set "dest" "Secretariat.Externe@Gmail.com";
set :lower "dest2" "PO000321@ADM.CFWB.BE";
set "domain" "adm.cfwb.be";
redirect :copy "${dest}";
redirect :copy "${dest2}";
redirect :copy "ec099999@${domain}";
