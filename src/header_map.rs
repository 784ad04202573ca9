//! The proxy-wasm wire format of header maps, read without copying or trusting it: a
//! malformed or non-UTF-8 map from the host yields fewer pairs, never a panic.
//!
//! Layout: `u32 count`, then `count` pairs of `u32 key_len, u32 value_len`, then each key and
//! value followed by a NUL byte. All integers little-endian.

pub fn pairs(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    // Checked arithmetic throughout: on wasm32 `usize` is 32 bits, so a damaged length near
    // `u32::MAX` would overflow.
    let count = read_u32(bytes, 0).unwrap_or(0);
    // A count the buffer cannot hold is damage: read nothing rather than guess.
    let data_start = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|&end| end <= bytes.len());
    let (count, mut data) = data_start.map_or((0, 0), |start| (count, start));
    (0..count).map_while(move |n| {
        let key_len = read_u32(bytes, 4 + n * 8)?;
        let value_len = read_u32(bytes, 8 + n * 8)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data += key_len + 1;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data += value_len + 1;
        Some((key, value))
    })
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw = bytes.get(at..at + 4)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(raw);
    Some(u32::from_le_bytes(b) as usize)
}

pub fn serialize(headers: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + headers
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (k, v) in headers {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_through_the_wire_format() {
        let headers = [
            (":path", "/v1/models"),
            ("x-a", ""),
            ("content-length", "12"),
        ];
        let wire = serialize(&headers);
        let back: Vec<(&[u8], &[u8])> = pairs(&wire).collect();
        let want: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn damaged_maps_yield_what_is_whole_and_never_panic() {
        let wire = serialize(&[("a", "1"), ("b", "2")]);
        for cut in 0..wire.len() {
            let n = pairs(&wire[..cut]).count();
            assert!(n <= 2);
        }
        assert_eq!(pairs(&[0xff, 0xff, 0xff, 0xff]).count(), 0);
        assert_eq!(pairs(&[]).count(), 0);
    }
}
