require ["fileinto","copy"];
# rule:[CRLF]
if header :contains "subject" "test"
{
	redirect :copy "test@example.org";
	fileinto "Tests";
}
redirect "all@example.org";
