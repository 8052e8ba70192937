//! The `bedrock` dialect's translation sides (being written; see translate/mod.rs for the contract).

use super::ir::*;
use crate::errors::GatewayError;

fn pending() -> GatewayError {
    GatewayError::new(501, "translation for `bedrock` is not built yet")
}

pub fn encode_request(_req: &Request, _t: &Target) -> Result<Vec<u8>, GatewayError> {
    Err(pending())
}
pub fn decode_response(_body: &[u8]) -> Result<Response, GatewayError> {
    Err(pending())
}
pub fn decode_error(status: u16, _error_type: Option<&str>, _body: &[u8]) -> GatewayError {
    GatewayError::new(status, "upstream error")
}
pub struct Decoder;
impl Decoder {
    pub fn new(_max_event: usize) -> Self {
        Decoder
    }
}
impl StreamDecoder for Decoder {
    fn feed(&mut self, _c: &[u8], _o: &mut Vec<Event>) -> Result<(), GatewayError> {
        Err(pending())
    }
    fn finish(&mut self, _o: &mut Vec<Event>) -> Result<(), GatewayError> {
        Err(pending())
    }
}
