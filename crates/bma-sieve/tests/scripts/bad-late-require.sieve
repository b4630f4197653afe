keep;
require "copy";
redirect :copy "x@y.be";
