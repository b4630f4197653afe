require "encoded-character";
redirect "${unicode:D800}@gmail.com";
