require ["copy"];
redirect :copy "x@sub.adm.cfwb.be";
redirect :copy "Direction <direction@ADM.CFWB.BE>";
redirect :copy "x@cfwb.be";
