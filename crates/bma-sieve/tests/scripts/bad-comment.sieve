keep; /* a comment that never ends
redirect "x@gmail.com";
