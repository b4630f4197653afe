require ["fileinto"];
# rule:[Renvoi direction]
if header :contains "from" "direction"
{
	redirect "direction.perso@skynet.be";
	stop;
}
# rule:[Spam]
if header :contains "x-spam-flag" "YES"
{
	fileinto "Junk";
	stop;
}
