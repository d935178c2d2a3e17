// The local development chain of `hardhat node` (Hardhat's EDR), used by Tessera's Ethereum
// node tests: chain id 31337, a block mined for each transaction.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true },
    },
  },
};
