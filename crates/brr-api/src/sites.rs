//! The site catalogue: the regions a provider runs brrd in, as listed in the service description.

/// `(code, location)` of every site.
pub const CATALOGUE: &[(&str, &str)] = &[
    ("HK-ALC", "Hong Kong Island, Hong Kong"),
    ("HK-CTT", "New Territories, Hong Kong"),
    ("SG-DRT", "Singapore"),
    ("TW-TPEASP", "Taipei, Taiwan"),
    ("TW-TPEYUD", "Taipei, Taiwan"),
    ("TW-TCH", "Taichung, Taiwan"),
    ("JP", "Tokyo, Japan"),
    ("CN-GZYUJ", "Guangzhou, China"),
    ("CN-GZKXC", "Guangzhou, China"),
    ("CN-SHWGQ", "Shanghai, China"),
    ("CN-SHBAO", "Shanghai, China"),
    ("CN-BJJXQ", "Beijing, China"),
    ("CN-BJKC", "Beijing, China"),
    ("DE-FRA", "Frankfurt, Germany"),
    ("US-LAX", "Los Angeles, United States"),
    ("US-NYC", "New York, United States"),
    ("US-NY11", "New York, United States"),
    ("ZA-CPT", "Cape Town, South Africa"),
    ("GB-LND", "London, United Kingdom"),
    ("EE-TTLSOL", "Tallinn, Estonia"),
];

/// True when `code` is a site of the catalogue (exact, case-sensitive).
pub fn is_known_site(code: &str) -> bool {
    CATALOGUE.iter().any(|(c, _)| *c == code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalogue_has_twenty_unique_sites() {
        let mut codes: Vec<_> = super::CATALOGUE.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 20);
        assert!(super::is_known_site("HK-ALC"));
        assert!(!super::is_known_site("hk-alc"));
    }
}
