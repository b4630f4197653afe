require ["encoded-character", "copy"];
redirect :copy "contact${hex:40}gmail.com";
redirect :copy "${unicode:0065}c012345@adm.cfwb.be";
fileinto "caf${unicode:e9}";
