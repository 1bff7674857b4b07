// SPDX-License-Identifier: MIT
pragma solidity =0.7.6;

// DemoV3Callee mints liquidity in and swaps through Uniswap V3 pools for chainsink's demo and tests. A pool
// pays out first and then calls back its caller for the tokens it is owed; this contract answers those
// callbacks by moving the tokens from the account that called it (which approved it beforehand).
interface IERC20Minimal {
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

interface IPoolMinimal {
    function token0() external view returns (address);
    function token1() external view returns (address);
    function mint(address recipient, int24 tickLower, int24 tickUpper, uint128 amount, bytes calldata data)
        external returns (uint256 amount0, uint256 amount1);
    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96, bytes calldata data)
        external returns (int256 amount0, int256 amount1);
}

contract DemoV3Callee {
    function mint(address pool, int24 tickLower, int24 tickUpper, uint128 amount) external {
        IPoolMinimal(pool).mint(msg.sender, tickLower, tickUpper, amount, abi.encode(msg.sender));
    }

    function swap(address pool, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96) external {
        IPoolMinimal(pool).swap(msg.sender, zeroForOne, amountSpecified, sqrtPriceLimitX96, abi.encode(msg.sender));
    }

    function uniswapV3MintCallback(uint256 amount0Owed, uint256 amount1Owed, bytes calldata data) external {
        pay(abi.decode(data, (address)), amount0Owed, amount1Owed);
    }

    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        pay(abi.decode(data, (address)), amount0Delta > 0 ? uint256(amount0Delta) : 0, amount1Delta > 0 ? uint256(amount1Delta) : 0);
    }

    // pay moves what the calling pool is owed from payer to it. Any contract may call this back, but it only
    // moves tokens of a payer who approved this contract, to the caller: a demo contract, not for mainnet.
    function pay(address payer, uint256 amount0, uint256 amount1) private {
        if (amount0 > 0) require(IERC20Minimal(IPoolMinimal(msg.sender).token0()).transferFrom(payer, msg.sender, amount0), "token0");
        if (amount1 > 0) require(IERC20Minimal(IPoolMinimal(msg.sender).token1()).transferFrom(payer, msg.sender, amount1), "token1");
    }
}
