mod import_props;
mod peer_parse;
