require ["copy"];
redirect :copy "x@gmail.com;
keep;
