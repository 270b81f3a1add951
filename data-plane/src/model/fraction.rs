//! A share of requests, as Envoy's `FractionalPercent` states it (a
//! numerator over a hundred, ten thousand or a million), and the roll that
//! decides whether one request falls in it.

/// `numerator` out of `denominator` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    pub numerator: u32,
    /// 100, 10 000 or 1 000 000.
    pub denominator: u32,
}

impl Fraction {
    /// Every request.
    pub const ALL: Fraction = Fraction {
        numerator: 100,
        denominator: 100,
    };

    /// Whether a request whose uniform random number is `roll` falls in
    /// the share, as Envoy decides: `roll % denominator < numerator` (a
    /// numerator above the denominator takes every request).
    pub fn hits(&self, roll: u64) -> bool {
        roll % u64::from(self.denominator.max(1)) < u64::from(self.numerator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_takes_the_rolls_below_its_numerator() {
        let half = Fraction {
            numerator: 50,
            denominator: 100,
        };
        assert!(half.hits(49));
        assert!(!half.hits(50));
        assert!(half.hits(149));
        let none = Fraction {
            numerator: 0,
            denominator: 1_000_000,
        };
        assert!(!none.hits(0));
        let over = Fraction {
            numerator: 200,
            denominator: 100,
        };
        assert!((0..100).all(|roll| over.hits(roll)));
        assert!((0..100).all(|roll| Fraction::ALL.hits(roll)));
    }
}
