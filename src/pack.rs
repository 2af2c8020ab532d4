//! Packing serialised items into containers bounded by bytes and count: Segment batches and
//! parked SQS messages both use it.

use std::ops::Range;

/// Splits `sizes` into consecutive ranges whose container stays within `max_bytes` and
/// `max_items`. A container costs `overhead` bytes plus each item and one separator per item.
/// An item too large for any container gets a range of its own; callers reject such items
/// before they get here.
pub fn pack(
    sizes: impl IntoIterator<Item = usize>,
    overhead: usize,
    max_bytes: usize,
    max_items: usize,
) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut used, mut count) = (0, overhead, 0);
    for (index, size) in sizes.into_iter().enumerate() {
        let cost = size + 1;
        if count > 0 && (used + cost > max_bytes || count == max_items) {
            ranges.push(start..index);
            (start, used, count) = (index, overhead, 0);
        }
        used += cost;
        count += 1;
    }
    if count > 0 {
        ranges.push(start..start + count);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_bytes_and_on_count() {
        assert_eq!(pack([4, 4, 4], 2, 12, 10), vec![0..2, 2..3]);
        assert_eq!(pack([1, 1, 1, 1, 1], 0, 100, 2), vec![0..2, 2..4, 4..5]);
        assert!(pack([], 2, 10, 10).is_empty());
    }

    #[test]
    fn an_oversized_item_stands_alone() {
        assert_eq!(pack([2, 50, 2], 0, 10, 10), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn every_range_fits_and_nothing_is_lost() {
        let sizes: Vec<usize> = (0..500).map(|i| (i * 37) % 300 + 1).collect();
        let ranges = pack(sizes.iter().copied(), 40, 1_000, 7);
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, sizes.len());
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for range in ranges {
            assert!(range.len() <= 7);
            assert!(40 + sizes[range].iter().map(|s| s + 1).sum::<usize>() <= 1_000);
        }
    }
}
