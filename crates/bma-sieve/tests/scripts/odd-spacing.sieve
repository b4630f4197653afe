require["copy","fileinto"];if header:contains"subject""x"{redirect:copy"x@y.org";}
REDIRECT    :COPY
     "spaced@example.net"
   ;
if not exists ["x-a","x-b"]{fileinto"a";}elsif true{keep;}else{discard;}
