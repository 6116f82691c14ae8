// What a generator serves, asked over gRPC.
import * as grpc from '@grpc/grpc-js';
import { GetServingInfoResponse, RolloutGeneratorClient } from '@temper/proto';

export async function generatorServingInfo(address: string): Promise<GetServingInfoResponse> {
  const client = new RolloutGeneratorClient(address, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => client.getServingInfo({}, (err, res) => (err ? reject(err) : resolve(res))));
  } finally {
    client.close();
  }
}
