//! Transience, equalized contexts and two-layer claims: C8, C10-C12
