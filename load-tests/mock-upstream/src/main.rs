//! `mock-upstream [ADDR] [ID]`: run the mock standalone (SDK tests, load rig).
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9999".into());
    let id = args.next().unwrap_or_else(|| "mock".into());
    let m = mock_upstream::Mock::start_on(&addr, &id).await?;
    println!("mock-upstream {} listening on {}", m.id, m.addr);
    std::future::pending::<()>().await;
    Ok(())
}
