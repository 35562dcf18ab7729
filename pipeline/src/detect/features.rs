//! What one analysis frame contributes: HSV pixels, luma, a hue/saturation histogram, a coarse
//! luma grid, and the frame's own scores (brightness, contrast, sharpness, perceptual hash).

/// Hue bins × saturation bins of the colour histogram.
const HUE_BINS: usize = 16;
const SAT_BINS: usize = 4;
/// Coarse luma grid for the layout comparison.
const GRID_W: usize = 16;
const GRID_H: usize = 9;

/// Features of one frame.
pub struct Features {
    hsv: Vec<[u8; 3]>,
    luma: Vec<u8>,
    hist: [f32; HUE_BINS * SAT_BINS],
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
        let mut hsv = Vec::with_capacity(n);
        let mut luma = Vec::with_capacity(n);
        let mut hist = [0f32; HUE_BINS * SAT_BINS];
        let (mut sum, mut sum_sq) = (0f64, 0f64);
        for px in rgb.chunks_exact(3).take(n) {
            let (h, s, v) = to_hsv(px[0], px[1], px[2]);
            hsv.push([h, s, v]);
            let y = ((77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) >> 8) as u8;
            luma.push(y);
            sum += y as f64;
            sum_sq += (y as f64) * (y as f64);
            let hb = (h as usize * HUE_BINS / 180).min(HUE_BINS - 1);
            let sb = (s as usize * SAT_BINS / 256).min(SAT_BINS - 1);
            hist[hb * SAT_BINS + sb] += 1.0;
        }
        let inv = 1.0 / n.max(1) as f32;
        hist.iter_mut().for_each(|h| *h *= inv);
        let mean = sum / n.max(1) as f64;
        let var = (sum_sq / n.max(1) as f64 - mean * mean).max(0.0);
        Self {
            grid: block_means(&luma, width, height, GRID_W, GRID_H),
            sharpness: laplacian_variance(&luma, width, height),
            phash: phash(&luma, width, height),
            hsv,
            luma,
            hist,
            luma_mean: mean as f32,
            luma_std: var.sqrt() as f32,
        }
    }

    /// Mean absolute HSV difference (hue circular, on OpenCV's 0–180 scale), 0–255.
    pub fn content_diff(&self, other: &Self) -> f32 {
        let mut total = 0u64;
        for (a, b) in self.hsv.iter().zip(&other.hsv) {
            let dh = a[0].abs_diff(b[0]);
            let dh = dh.min(180 - dh.min(180));
            total += dh as u64 + a[1].abs_diff(b[1]) as u64 + a[2].abs_diff(b[2]) as u64;
        }
        total as f32 / (3 * self.hsv.len().max(1)) as f32
    }

    /// Half the L1 distance of the hue/saturation histograms, 0–1.
    pub fn hist_distance(&self, other: &Self) -> f32 {
        0.5 * self.hist.iter().zip(&other.hist).map(|(a, b)| (a - b).abs()).sum::<f32>()
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
        let total: u64 = self.luma.iter().zip(&other.luma).map(|(a, b)| a.abs_diff(*b) as u64).sum();
        total as f32 / self.luma.len().max(1) as f32
    }
}

/// RGB to HSV with H in 0–179 (OpenCV's scale), S and V in 0–255.
fn to_hsv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let max = r.max(g).max(b) as i32;
    let min = r.min(g).min(b) as i32;
    let delta = max - min;
    if delta == 0 {
        return (0, 0, max as u8);
    }
    let s = (255 * delta / max) as u8;
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let h60 = if max == r {
        30 * (g - b) / delta
    } else if max == g {
        60 + 30 * (b - r) / delta
    } else {
        120 + 30 * (r - g) / delta
    };
    (h60.rem_euclid(180) as u8, s, max as u8)
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
    let cos = |u: usize, x: usize| ((2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / (2 * N) as f32).cos();
    let mut rows = [0f32; N * K];
    for y in 0..N {
        for u in 0..K {
            rows[y * K + u] = (0..N).map(|x| small[y * N + x] * cos(u, x)).sum();
        }
    }
    let mut coeffs = [0f32; K * K];
    for v in 0..K {
        for u in 0..K {
            coeffs[v * K + u] = (0..N).map(|y| rows[y * K + u] * cos(v, y)).sum();
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
