fn main() {
    let p = std::env::args().nth(1).unwrap();
    let df = icl_fit_nu::io::read_frame(std::path::Path::new(&p)).unwrap();
    for c in ["claim", "verdict", "unit"] {
        println!("{c}: {}", df.column(c).unwrap().str().unwrap().get(0).unwrap());
    }
    for c in ["value", "low", "high", "n_runs"] {
        println!("{c}: {:?}", icl_fit_nu::io::col_f64(&df, c).unwrap()[0]);
    }
    let d: serde_json::Value = serde_json::from_str(df.column("details").unwrap().str().unwrap().get(0).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&d).unwrap());
}
