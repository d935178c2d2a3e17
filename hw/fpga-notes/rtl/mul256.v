// 256 x 256 -> 512-bit unsigned multiplier built from DSP-sized partial products.
//
// Target: Xilinx UltraScale+ DSP48E2, a 27x18 *signed* multiplier, i.e. 26x17 unsigned.
// a is cut into 10 limbs of 26 bits, b[254:0] into 15 limbs of 17 bits: 150 partial products,
// one DSP48E2 each. Bit 255 of b is handled in LUTs (one AND row), which saves the 10 DSPs a
// 16th, 1-bit-wide limb of b would cost.
//
// Pipeline (initiation interval 1, latency LAT = 7):
//   S1  input registers (AREG/BREG)
//   S2  partial products registered (MREG/PREG)
//   S3..S7 a 5-level binary adder tree over 31 addends:
//       for each b limb j the products of even a limbs (i = 0,2,..,8) do not overlap
//       (43-bit products, 52-bit spacing), so they are concatenated for free; the same for
//       odd i. 15 rows x 2 + the bit-255 row = 31 addends.
// Written by hand for hw/fpga-notes (Verilog-2005).
module mul256 (
    input  wire         clk,
    input  wire [255:0] a,
    input  wire [255:0] b,
    output wire [511:0] p
);
    localparam NA = 10, NB = 15, PW = 43, W = 512, NADD = 31;

    reg [255:0] ra, rb;
    always @(posedge clk) begin
        ra <= a;
        rb <= b;
    end
    wire [259:0] ae = {4'b0, ra};

    // S2: partial products
    wire [NA*NB*PW-1:0] ppw;
    reg  [NA*NB*PW-1:0] pp;
    reg  [W-1:0]        top_row;   // b[255] * a << 255
    genvar gi, gj;
    generate
        for (gi = 0; gi < NA; gi = gi + 1) begin : g_a
            for (gj = 0; gj < NB; gj = gj + 1) begin : g_b
                wire [25:0] al = ae[26*gi +: 26];
                wire [16:0] bl = rb[17*gj +: 17];
                assign ppw[(gi*NB+gj)*PW +: PW] = al * bl;
            end
        end
    endgenerate
    always @(posedge clk) begin
        pp      <= ppw;
        top_row <= rb[255] ? ({256'b0, ra} << 255) : {W{1'b0}};
    end

    // S3: the 31 addends -- for each b limb j, the even-i and the odd-i products concatenated
    // (constant shifts, i.e. wiring) -- summed pairwise into 16 registers.
    reg [16*W-1:0] lv1;
    reg [W-1:0] ev, od;
    integer i, j;
    always @(posedge clk) begin
        for (j = 0; j < NB; j = j + 1) begin
            ev = {W{1'b0}};
            od = {W{1'b0}};
            for (i = 0; i < NA; i = i + 2) begin
                ev = ev | ({{(W-PW){1'b0}}, pp[(i*NB+j)*PW +: PW]} << (26*i + 17*j));
                od = od | ({{(W-PW){1'b0}}, pp[((i+1)*NB+j)*PW +: PW]} << (26*(i+1) + 17*j));
            end
            lv1[j*W +: W] <= ev + od;
        end
        lv1[15*W +: W] <= top_row;
    end

    // S4..S7: adder tree 16 -> 8 -> 4 -> 2 -> 1
    reg [8*W-1:0]  lv2;
    reg [4*W-1:0]  lv3;
    reg [2*W-1:0]  lv4;
    reg [W-1:0]    lv5;
    integer k;
    always @(posedge clk) begin
        for (k = 0; k < 8; k = k + 1)
            lv2[k*W +: W] <= lv1[(2*k)*W +: W] + lv1[(2*k+1)*W +: W];
        for (k = 0; k < 4; k = k + 1)
            lv3[k*W +: W] <= lv2[(2*k)*W +: W] + lv2[(2*k+1)*W +: W];
        for (k = 0; k < 2; k = k + 1)
            lv4[k*W +: W] <= lv3[(2*k)*W +: W] + lv3[(2*k+1)*W +: W];
        lv5 <= lv4[0 +: W] + lv4[W +: W];
    end
    assign p = lv5;
endmodule
