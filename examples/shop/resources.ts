// Custom behaviour of the shop. Everything one request does through `tables` lands in one
// write set: the order and the stock it reserves commit together or not at all.
import { tables, Resource, Problem } from 'lockstep';

interface OrderRequest {
  customerId?: unknown;
  productId?: unknown;
  quantity?: unknown;
}

export class Order extends tables.Order {
  /** POST /shop/Order/ {customerId, productId, quantity}: reserve stock and record the order. */
  async post(target: unknown, body: OrderRequest | null) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new Problem('invalid', { detail: 'an order is a JSON object: {customerId, productId, quantity}' });
    }
    const { customerId, productId, quantity } = body;
    if (typeof productId !== 'string' || typeof customerId !== 'string' || !Number.isInteger(quantity) || (quantity as number) < 1) {
      throw new Problem('invalid', { detail: 'an order needs customerId, productId and a positive integer quantity' });
    }
    const customer = await tables.Customer.get(customerId);
    if (customer === undefined) throw new Problem('invalid', { detail: `no customer ${customerId}` });
    const product = await tables.Product.get(productId);
    if (product === undefined) throw new Problem('invalid', { detail: `no product ${productId}` });
    const stock = product.stock as number;
    if (stock < (quantity as number)) {
      throw new Problem('conflict', { detail: `only ${stock} of ${productId} left` });
    }
    await tables.Product.patch(productId, { stock: stock - (quantity as number) });
    const total = Math.round((product.price as number) * (quantity as number) * 100) / 100;
    const id = await tables.Order.create({ customerId, productId, quantity, total, status: 'placed' });
    return { id, total };
  }
}

/** GET /shop/Stats/: totals computed from the tables. */
export class Stats extends Resource {
  async get() {
    const products = await tables.Product.search('limit(10000)');
    const stock = products.reduce((sum, product) => sum + (product.stock as number), 0);
    return { products: products.length, unitsInStock: stock };
  }
}
