//! The one rule for work done in batches (an ffmpeg process for several clips, a model run for
//! several clips or samples): try the batch together, and when it fails, each item alone, so one
//! bad item fails by itself and its neighbours keep their results.

/// Run `run` over `items` together (it gives one result per item); when that fails and there is
/// more than one item, over each item alone. One result per item, in order.
pub fn together_or_alone<T, R, E>(items: &[T], mut run: impl FnMut(&[T]) -> Result<Vec<R>, E>) -> Vec<Result<R, E>> {
    match run(items) {
        Ok(results) => {
            assert_eq!(results.len(), items.len(), "one result per item");
            results.into_iter().map(Ok).collect()
        }
        Err(e) if items.len() == 1 => vec![Err(e)],
        Err(_) => items.chunks(1).map(|one| run(one).map(|mut result| result.pop().expect("one result per item"))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::together_or_alone;

    #[test]
    fn a_bad_item_fails_alone_and_the_others_keep_their_results() {
        let mut calls = 0;
        let results = together_or_alone(&[1, 2, 3], |batch: &[i32]| {
            calls += 1;
            if batch.contains(&2) { Err(format!("bad {batch:?}")) } else { Ok(batch.iter().map(|i| i * 10).collect()) }
        });
        assert_eq!(results, [Ok(10), Err("bad [2]".to_string()), Ok(30)]);
        assert_eq!(calls, 4, "once together, then once each");
        let together = together_or_alone(&[1, 3], |batch: &[i32]| Ok::<_, String>(batch.to_vec()));
        assert_eq!(together, [Ok(1), Ok(3)]);
        assert_eq!(together_or_alone(&[2], |_: &[i32]| Err::<Vec<i32>, _>("alone")), [Err("alone")]);
    }
}
