mod peer_parse;
