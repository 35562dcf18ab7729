//! What one analysis frame contributes: HSV pixels, luma, a coarse luma grid, and the frame's own
//! scores (brightness, contrast, sharpness, perceptual hash).

use std::sync::OnceLock;

/// Coarse luma grid for the layout comparison.
const GRID_W: usize = 16;
const GRID_H: usize = 9;

/// Features of one frame.
pub struct Features {
    /// Hue, saturation and value planes (planar, so the difference loops vectorise).
    hsv: [Vec<u8>; 3],
    luma: Vec<u8>,
    grid: [f32; GRID_W * GRID_H],
    /// Mean luma, 0–255.
    pub luma_mean: f32,
    /// Standard deviation of luma.
    pub luma_std: f32,
    /// Variance of the 4-neighbour Laplacian of luma.
    pub sharpness: f32,
    /// 64-bit DCT perceptual hash of luma.
    pub phash: u64,
}

impl Features {
    /// Compute from packed RGB of `width * height` pixels.
    pub fn from_rgb(rgb: &[u8], width: usize, height: usize) -> Self {
        let n = width * height;
        let mut hsv = [Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n)];
        let mut luma = Vec::with_capacity(n);
        let (mut sum, mut sum_sq) = (0f64, 0f64);
        for px in rgb.chunks_exact(3).take(n) {
            let (h, s, v) = to_hsv(px[0], px[1], px[2]);
            hsv[0].push(h);
            hsv[1].push(s);
            hsv[2].push(v);
            let y = ((77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) >> 8) as u8;
            luma.push(y);
            sum += y as f64;
            sum_sq += (y as f64) * (y as f64);
        }
        let mean = sum / n.max(1) as f64;
        let var = (sum_sq / n.max(1) as f64 - mean * mean).max(0.0);
        Self {
            grid: block_means(&luma, width, height, GRID_W, GRID_H),
            sharpness: laplacian_variance(&luma, width, height),
            phash: phash(&luma, width, height),
            hsv,
            luma,
            luma_mean: mean as f32,
            luma_std: var.sqrt() as f32,
        }
    }

    /// Mean absolute HSV difference (hue circular, on OpenCV's 0–180 scale), 0–255.
    pub fn content_diff(&self, other: &Self) -> f32 {
        let [hue, sat, val] = self.channel_diffs(other);
        (hue + sat + val) / 3.0
    }

    /// Mean absolute difference of hue (circular), saturation and value, each 0–255.
    pub fn channel_diffs(&self, other: &Self) -> [f32; 3] {
        let hue: u64 = self.hsv[0]
            .iter()
            .zip(&other.hsv[0])
            .map(|(a, b)| {
                let d = a.abs_diff(*b);
                d.min(180u8.saturating_sub(d)) as u64
            })
            .sum();
        let n = self.hsv[0].len().max(1) as f32;
        [hue as f32 / n, sum_abs_diff(&self.hsv[1], &other.hsv[1]) as f32 / n, sum_abs_diff(&self.hsv[2], &other.hsv[2]) as f32 / n]
    }

    /// Mean absolute luma difference that remains after matching this frame's brightness and
    /// contrast to `other`'s: near zero when only the light changed.
    pub fn relit_residual(&self, other: &Self) -> f32 {
        let gain = if self.luma_std > 1.0 { other.luma_std / self.luma_std } else { 1.0 };
        let total: f32 = self
            .luma
            .iter()
            .zip(&other.luma)
            .map(|(&a, &b)| ((a as f32 - self.luma_mean) * gain - (b as f32 - other.luma_mean)).abs())
            .sum();
        total / self.luma.len().max(1) as f32
    }

    /// 1 − Pearson correlation of the coarse luma grids, 0–2. Blank grids compare by mean.
    pub fn structure_dissimilarity(&self, other: &Self) -> f32 {
        let (ma, sa) = mean_std(&self.grid);
        let (mb, sb) = mean_std(&other.grid);
        if sa < 1.0 || sb < 1.0 {
            return if (ma - mb).abs() < 8.0 { 0.0 } else { 1.0 };
        }
        let cov = self.grid.iter().zip(&other.grid).map(|(a, b)| (a - ma) * (b - mb)).sum::<f32>() / self.grid.len() as f32;
        1.0 - cov / (sa * sb)
    }

    /// Mean absolute luma difference, 0–255.
    pub fn luma_diff(&self, other: &Self) -> f32 {
        sum_abs_diff(&self.luma, &other.luma) as f32 / self.luma.len().max(1) as f32
    }
}

/// Sum of absolute differences, in chunks whose partial sums fit in u16 so the loop vectorises.
fn sum_abs_diff(a: &[u8], b: &[u8]) -> u64 {
    const CHUNK: usize = 256;
    a.chunks(CHUNK)
        .zip(b.chunks(CHUNK))
        .map(|(ca, cb)| ca.iter().zip(cb).map(|(x, y)| x.abs_diff(*y) as u16).fold(0u16, u16::wrapping_add) as u64)
        .sum()
}

/// Reciprocals 1/n for n in 0..=255 (0 for n = 0), so the per-pixel HSV conversion multiplies
/// instead of dividing.
fn reciprocals() -> &'static [f32; 256] {
    static TABLE: OnceLock<[f32; 256]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|n| if n == 0 { 0.0 } else { 1.0 / n as f32 }))
}

/// RGB to HSV with H in 0–179 (OpenCV's scale), S and V in 0–255.
#[inline]
fn to_hsv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    if delta == 0 {
        return (0, 0, max);
    }
    let inv = reciprocals();
    let s = (255.0 * delta as f32 * inv[max as usize]) as u8;
    let (r, g, b) = (r as f32, g as f32, b as f32);
    let k = 30.0 * inv[delta as usize];
    let h = if max as f32 == r {
        (g - b) * k
    } else if max as f32 == g {
        60.0 + (b - r) * k
    } else {
        120.0 + (r - g) * k
    };
    ((h as i32).rem_euclid(180) as u8, s, max)
}

fn mean_std(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, var.sqrt())
}

/// Average luma over a `cols` x `rows` grid of blocks (area downscaling).
fn block_means<const N: usize>(luma: &[u8], width: usize, height: usize, cols: usize, rows: usize) -> [f32; N] {
    debug_assert_eq!(cols * rows, N);
    let mut out = [0f32; N];
    let mut counts = [0u32; N];
    for y in 0..height {
        let by = y * rows / height;
        for x in 0..width {
            let cell = by * cols + x * cols / width;
            out[cell] += luma[y * width + x] as f32;
            counts[cell] += 1;
        }
    }
    for (o, c) in out.iter_mut().zip(counts) {
        *o /= c.max(1) as f32;
    }
    out
}

fn laplacian_variance(luma: &[u8], width: usize, height: usize) -> f32 {
    if width < 3 || height < 3 {
        return 0.0;
    }
    let (mut sum, mut sum_sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..height - 1 {
        for x in 1..width - 1 {
            let i = y * width + x;
            let lap = luma[i - 1] as i32 + luma[i + 1] as i32 + luma[i - width] as i32 + luma[i + width] as i32
                - 4 * luma[i] as i32;
            sum += lap as f64;
            sum_sq += (lap * lap) as f64;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean) as f32
}

/// pHash: luma averaged down to 32×32, the 8×8 lowest DCT-II frequencies, one bit per
/// coefficient above their median (the DC term excluded from the median).
fn phash(luma: &[u8], width: usize, height: usize) -> u64 {
    const N: usize = 32;
    const K: usize = 8;
    let small: [f32; N * N] = block_means(luma, width, height, N, N);
    static COS: OnceLock<[[f32; N]; K]> = OnceLock::new();
    let cos = COS.get_or_init(|| {
        std::array::from_fn(|u| std::array::from_fn(|x| ((2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / (2 * N) as f32).cos()))
    });
    let mut rows = [0f32; N * K];
    for y in 0..N {
        for u in 0..K {
            rows[y * K + u] = (0..N).map(|x| small[y * N + x] * cos[u][x]).sum();
        }
    }
    let mut coeffs = [0f32; K * K];
    for v in 0..K {
        for u in 0..K {
            coeffs[v * K + u] = (0..N).map(|y| rows[y * K + u] * cos[v][y]).sum();
        }
    }
    let mut ac: Vec<f32> = coeffs[1..].to_vec();
    ac.sort_by(f32::total_cmp);
    let median = ac[ac.len() / 2];
    coeffs.iter().enumerate().fold(0u64, |bits, (i, c)| if *c > median { bits | (1 << i) } else { bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_sum_of_differences_equals_the_plain_sum() {
        let a: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let b: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let plain: u64 = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y) as u64).sum();
        assert_eq!(sum_abs_diff(&a, &b), plain);
    }

    #[test]
    fn hsv_matches_opencv_conventions() {
        assert_eq!(to_hsv(255, 0, 0), (0, 255, 255));
        assert_eq!(to_hsv(0, 255, 0), (60, 255, 255));
        assert_eq!(to_hsv(0, 0, 255), (120, 255, 255));
        assert_eq!(to_hsv(128, 128, 128), (0, 0, 128));
    }

    #[test]
    fn phash_is_stable_under_brightness_and_differs_across_images() {
        let (w, h) = (64, 36);
        let img = |f: &dyn Fn(usize, usize) -> u8| -> Vec<u8> { (0..w * h).map(|i| f(i % w, i / w)).collect() };
        let a = img(&|x, y| ((x * 3 + y * 5) % 256) as u8);
        let brighter: Vec<u8> = a.iter().map(|v| v.saturating_add(20)).collect();
        let b = img(&|x, _| if x < w / 2 { 30 } else { 220 });
        assert!((phash(&a, w, h) ^ phash(&brighter, w, h)).count_ones() <= 4);
        assert!((phash(&a, w, h) ^ phash(&b, w, h)).count_ones() > 10);
    }
}
