use std::time::Duration;

use hpki_card::{Application, CardVariant, PcscContext};
use testbed::{CardProcess, PrivatePcscd, pki};

#[test]
fn smoke() {
    let pcscd = PrivatePcscd::start().unwrap();
    pcscd.use_in_this_process().unwrap();
    let dir = pcscd.dir().to_path_buf();
    let image = pki::test_card(CardVariant::Jma, "Test Doctor", "1234", 5).unwrap();
    let path = dir.join("doctor.json");
    image.save(&path).unwrap();
    let card = CardProcess::start(&pcscd, 0, &path).unwrap();
    let ctx = PcscContext::establish().unwrap();
    println!("readers: {:?}", ctx.readers());
    let id = ctx.wait_for_card(card.reader(), Duration::from_secs(5)).unwrap();
    println!("{id:?}");
    let mut c = ctx.connect(card.reader()).unwrap();
    let cert = c.read_certificate(Application::Authentication).unwrap();
    assert_eq!(cert, image.authentication.certificate);
    println!("{:?}", card.apdu_log());
}
