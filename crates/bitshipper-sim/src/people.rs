//! Synthetic recipients: names from small lists, addresses on invented streets, emails at the
//! reserved example.com domain and phone numbers in the fictional 555-01xx range.

use rand::seq::SliceRandom;
use rand::Rng;

const FIRST: &[&str] = &[
    "Ava", "Ben", "Carmen", "Dmitri", "Elena", "Farah", "Gabriel", "Hana", "Isaac", "Jada", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Anderson", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Johnson",
    "Kim", "Lopez", "Moreau", "Nguyen", "Okafor", "Patel", "Quist", "Rossi", "Smith", "Tanaka",
    "Ueda", "Valdez", "Williams", "Xu", "Yilmaz", "Zimmer",
];
const STREETS: &[&str] = &[
    "Maple",
    "Oak",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "River",
    "Sunset",
    "Mill",
    "Church",
    "Spring",
    "Ridge",
];
const SUFFIX: &[&str] = &["St", "Ave", "Rd", "Ln", "Dr", "Ct"];

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub street: String,
}

pub fn person(rng: &mut impl Rng) -> Person {
    let first = FIRST.choose(rng).copied().unwrap_or("Sam");
    let last = LAST.choose(rng).copied().unwrap_or("Smith");
    Person {
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            rng.gen_range(1..100)
        ),
        phone: format!(
            "+1 {:03}-555-01{:02}",
            rng.gen_range(201..990),
            rng.gen_range(0..100)
        ),
        street: format!(
            "{} {} {}",
            rng.gen_range(1..9999),
            STREETS.choose(rng).copied().unwrap_or("Main"),
            SUFFIX.choose(rng).copied().unwrap_or("St")
        ),
    }
}
