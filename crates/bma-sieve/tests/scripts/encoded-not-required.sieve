require ["copy"];
redirect :copy "contact${hex:40}gmail.com";
