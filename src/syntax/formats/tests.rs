use super::*;

#[test]
fn the_extension_wins_over_the_content() {
    let zed = "definition user {}";
    assert_eq!(detect(Some(Path::new("a.zed")), "type user {}"), SchemaFormat::SpiceDb);
    assert_eq!(detect(Some(Path::new("a.pv")), zed), SchemaFormat::Purview);
    assert_eq!(detect(Some(Path::new("a.fga")), zed), SchemaFormat::OpenFgaDsl);
    assert_eq!(detect(Some(Path::new("a.json")), zed), SchemaFormat::OpenFgaJson);
    assert_eq!(detect(Some(Path::new("a.txt")), zed), SchemaFormat::SpiceDb);
}

#[test]
fn the_content_decides_after_comments() {
    let cases = [
        ("// c\n/* x\n */ definition user {}", SchemaFormat::SpiceDb),
        ("use expiration\ndefinition user {}", SchemaFormat::SpiceDb),
        ("caveat c(a int) { a == 1 }", SchemaFormat::SpiceDb),
        ("# c\nmodel\n  schema 1.1\ntype user", SchemaFormat::OpenFgaDsl),
        ("  {\"schema_version\": \"1.1\"}", SchemaFormat::OpenFgaJson),
        ("/// doc\ntype user {}", SchemaFormat::Purview),
        ("", SchemaFormat::Purview),
        ("/* unterminated", SchemaFormat::Purview),
        ("definitions", SchemaFormat::Purview),
    ];
    for (text, expected) in cases {
        assert_eq!(detect(None, text), expected, "{text:?}");
    }
}

#[test]
fn names_round_trip() {
    for name in SchemaFormat::NAMES {
        let f: SchemaFormat = name.parse().unwrap();
        assert_eq!(f.to_string(), name);
    }
    assert!("yaml".parse::<SchemaFormat>().is_err());
}

#[test]
fn openfga_models_are_validated() {
    let text = "model\n  schema 1.1\ntype doc\n  relations\n    define viewer: [usr]\n";
    let d = parse_as(SchemaFormat::OpenFgaDsl, text).err().map(|d| d.0[0].code);
    assert_eq!(d, Some("unknown-type"));
}
