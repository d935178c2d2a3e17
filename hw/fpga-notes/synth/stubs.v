// Black-box stubs: the point adders are synthesized with their field multipliers as black
// boxes (the glue logic only); synth.sh adds N x the separately synthesized multiplier.
(* blackbox *)
module fmul_p25519 (input wire clk, input wire in_valid, input wire [255:0] a,
                    input wire [255:0] b, output wire out_valid, output wire [255:0] r);
endmodule
(* blackbox *)
module fmul_k256 (input wire clk, input wire in_valid, input wire [255:0] a,
                  input wire [255:0] b, output wire out_valid, output wire [255:0] r);
endmodule
