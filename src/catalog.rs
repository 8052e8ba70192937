//! Placeholder until the catalogue branch lands.
pub struct Catalog;
pub fn global() -> &'static Catalog {
    &Catalog
}
impl Catalog {
    pub fn provider_of(&self, _name: &str) -> Option<&str> {
        None
    }
    pub fn models_for_provider<'a>(&'a self, _p: &str) -> impl Iterator<Item = (&'a str, ())> {
        std::iter::empty()
    }
}
