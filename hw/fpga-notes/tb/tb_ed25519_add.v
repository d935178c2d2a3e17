// Test bench for ed25519_add: a new pair of points every cycle (back to back); every output
// coordinate compared with the exact output of the HWCD formulas. +VEC=<file.hex> +N=<count>;
// 12 values per vector: X1 Y1 Z1 T1 X2 Y2 Z2 T2 X3 Y3 Z3 T3.
`timescale 1ns/1ps
module tb_ed25519_add;
    reg clk = 0;
    always #1 clk = ~clk;
    reg in_valid = 0;
    reg  [255:0] x1 = 0, y1 = 0, z1 = 0, t1 = 0, x2 = 0, y2 = 0, z2 = 0, t2 = 0;
    wire out_valid;
    wire [255:0] x3, y3, z3, t3;
    ed25519_add dut (.clk(clk), .in_valid(in_valid), .x1(x1), .y1(y1), .z1(z1), .t1(t1),
                     .x2(x2), .y2(y2), .z2(z2), .t2(t2), .out_valid(out_valid),
                     .x3(x3), .y3(y3), .z3(z3), .t3(t3));
    reg [255:0] mem [0:16383];
    reg [1023:0] vecfile;
    integer n, issued, checked, failed, cycles, base;
    initial begin
        if (!$value$plusargs("VEC=%s", vecfile) || !$value$plusargs("N=%d", n)) begin
            $display("FAIL: need +VEC= and +N="); $finish;
        end
        $readmemh(vecfile, mem, 0, 12*n-1);
        issued = 0; checked = 0; failed = 0; cycles = 0;
    end
    always @(posedge clk) begin
        cycles <= cycles + 1;
        if (issued < n) begin
            base = 12*issued;
            x1 <= mem[base]; y1 <= mem[base+1]; z1 <= mem[base+2]; t1 <= mem[base+3];
            x2 <= mem[base+4]; y2 <= mem[base+5]; z2 <= mem[base+6]; t2 <= mem[base+7];
            in_valid <= 1; issued <= issued + 1;
        end else in_valid <= 0;
        if (out_valid) begin
            base = 12*checked;
            if (x3 !== mem[base+8] || y3 !== mem[base+9] || z3 !== mem[base+10] || t3 !== mem[base+11]) begin
                failed = failed + 1;
                if (failed <= 5) $display("MISMATCH %0d: got X3=%h want %h", checked, x3, mem[base+8]);
            end
            checked = checked + 1;
        end
        if (checked == n || cycles > n + 1000) begin
            $display("ed25519_add: %0d vectors, %0d passed, %0d failed (%0d cycles, back-to-back issue)",
                     n, checked - failed, failed + (n - checked), cycles);
            if (failed == 0 && checked == n) $display("RESULT PASS"); else $display("RESULT FAIL");
            $finish;
        end
    end
endmodule
