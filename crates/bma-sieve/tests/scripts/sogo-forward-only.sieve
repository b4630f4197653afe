require ["fileinto","reject","envelope"];
redirect "a.dupont@outlook.be";
redirect "b.martin@adm.cfwb.be";
keep;
