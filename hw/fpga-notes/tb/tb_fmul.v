// Test bench for fmul_p25519 / fmul_k256: one operand pair issued every cycle (back to back),
// every output compared with the expected value, in order. Compile with -DUNIT=<module>.
// Plusargs: +VEC=<file.hex> (a, b, expected per vector) +N=<count>.
`timescale 1ns/1ps
module tb_fmul;
    reg clk = 0;
    always #1 clk = ~clk;
    reg          in_valid = 0;
    reg  [255:0] a = 0, b = 0;
    wire         out_valid;
    wire [255:0] r;
    `UNIT dut (.clk(clk), .in_valid(in_valid), .a(a), .b(b), .out_valid(out_valid), .r(r));

    reg [255:0] mem [0:65535];
    reg [1023:0] vecfile;
    reg [511:0] name;
    integer n, issued, checked, failed, cycles;
    initial begin
        if (!$value$plusargs("VEC=%s", vecfile) || !$value$plusargs("N=%d", n)) begin
            $display("FAIL: need +VEC= and +N="); $finish;
        end
        $readmemh(vecfile, mem, 0, 3*n-1);
        if (!$value$plusargs("NAME=%s", name)) name = "fmul";
        issued = 0; checked = 0; failed = 0; cycles = 0;
    end
    always @(posedge clk) begin
        cycles <= cycles + 1;
        if (issued < n) begin
            a <= mem[3*issued]; b <= mem[3*issued+1]; in_valid <= 1; issued <= issued + 1;
        end else begin
            in_valid <= 0;
        end
        if (out_valid) begin
            if (r !== mem[3*checked+2]) begin
                failed = failed + 1;
                if (failed <= 5)
                    $display("MISMATCH %0d: a=%h b=%h got=%h want=%h", checked,
                             mem[3*checked], mem[3*checked+1], r, mem[3*checked+2]);
            end
            checked = checked + 1;
        end
        if (checked == n || cycles > n + 1000) begin
            $display("%0s: %0d vectors, %0d passed, %0d failed (%0d cycles, back-to-back issue)",
                     name, n, checked - failed, failed + (n - checked), cycles);
            if (failed == 0 && checked == n) $display("RESULT PASS"); else $display("RESULT FAIL");
            $finish;
        end
    end
endmodule
